"""The event bus: typed events through kombu (in-process memory by default, RabbitMQ at scale)."""
