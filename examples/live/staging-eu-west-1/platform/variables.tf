variable "env" {
  type = string
}
