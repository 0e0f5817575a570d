owner     = "security"
consumers = ["platform"]
