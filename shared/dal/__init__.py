"""Data access: one DAL per model over Firestore. Nothing above this package imports Firestore."""
