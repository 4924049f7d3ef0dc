"""Research code (RL sizing). May import execution/, never the other way round."""
