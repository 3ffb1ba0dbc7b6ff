from cimedic.cli import run

run()
