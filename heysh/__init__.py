"""heysh: knowledge platform backend."""
