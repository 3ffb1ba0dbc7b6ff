"""CI providers: fetch a run from GitHub Actions, GitLab CI, Jenkins or Azure DevOps through its SDK."""
