"""Training: one loop (engine.py) shared by the CycleGAN, SRGAN, StyleGAN2 and encoder recipes."""
