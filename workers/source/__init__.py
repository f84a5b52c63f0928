"""What the source delivers: opening it, reading it on one thread, and handing every packet to the taps."""
