"""The waitlist: buyers join a sold-out event's line (joining.py), freed tickets are offered to
them in join order (serving.py), and an offer's booking ends or fulfils its entry (hooks.py)."""
