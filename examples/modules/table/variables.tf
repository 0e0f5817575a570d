variable "name" {
  description = "Table name; include the environment."
  type        = string
}

variable "hash_key" {
  type    = string
  default = "id"
}

variable "range_key" {
  description = "Optional sort key (string)."
  type        = string
  default     = null
}

variable "tags" {
  type    = map(string)
  default = {}
}
