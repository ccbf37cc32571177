"""The CLI's command groups, one typer sub-app per module (registered in cli.py)."""
