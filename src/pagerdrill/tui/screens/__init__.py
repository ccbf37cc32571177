"""The screens of the drill TUI: start, drill and summary."""
