variable "name" {
  description = "Name prefix for every resource, e.g. \"prod\"."
  type        = string
}

variable "cidr" {
  description = "CIDR block of the VPC."
  type        = string
}

variable "azs" {
  description = "Availability zones; one public subnet is created in each."
  type        = list(string)
}

variable "subnet_newbits" {
  description = "Bits added to the VPC prefix for each subnet (a /16 VPC with 4 gives /20 subnets)."
  type        = number
  default     = 4
}

variable "enable_dns_hostnames" {
  description = "Give instances public DNS names. Off by default: turning it on costs the AWS provider a fixed 10 s wait per VPC."
  type        = bool
  default     = false
}
