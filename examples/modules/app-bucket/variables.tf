variable "name" {
  description = "Bucket name; must be unique, so include the environment."
  type        = string
}

variable "versioning" {
  description = "Keep old object versions."
  type        = bool
  default     = true
}

variable "tags" {
  type    = map(string)
  default = {}
}
