owner = "data-team"
tags  = { DataClass = "internal" }
