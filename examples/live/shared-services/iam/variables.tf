variable "deploy_accounts" {
  description = "Environment name => account id of the account CI deploys into."
  type        = map(string)
}

variable "state_bucket" {
  type = string
}

variable "lock_table" {
  type = string
}
