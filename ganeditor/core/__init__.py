"""Qt-free foundations: errors, progress/cancel, devices, files, image I/O, checkpoint I/O."""
