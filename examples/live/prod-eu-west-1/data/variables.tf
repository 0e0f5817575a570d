variable "env" {
  type = string
}

variable "schema_version" {
  description = "Bumped by the data team when the orders schema changes."
  type        = string
}
