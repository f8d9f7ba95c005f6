"""Bookings: buyers hold tickets (holding), cancel them or let them run out (releasing), and read
them (queries)."""
