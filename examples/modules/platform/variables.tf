variable "env" {
  description = "Environment name, used in every resource name."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  description = "Clients inside this CIDR may reach the app on HTTPS."
  type        = string
}

variable "app_port" {
  type    = number
  default = 443
}
