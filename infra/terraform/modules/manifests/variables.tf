variable "routes_file" {
  type        = string
  description = "Path to functions/routes.json: which function serves which URL paths."
}

variable "indexes_file" {
  type        = string
  description = "Path to firestore.indexes.json (the Firestore CLI index file format)."
}
