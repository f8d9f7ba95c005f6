"""Domain package shared by every Cloud Function of the ticketing backend."""
