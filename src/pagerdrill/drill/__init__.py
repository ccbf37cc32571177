"""The drill: engine, checklist, runner (scripts, autopilot), recover, the stack hold."""
