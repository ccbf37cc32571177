"""Reports of drills for people and tools: timelines, exports, reviews."""
