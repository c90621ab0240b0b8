"""Plain functions and generators that do the app's work (generate, invert, edit, translate, upscale, train)."""
