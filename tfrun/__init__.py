"""tfrun: run Terraform across many AWS accounts, regions and stacks."""

from __future__ import annotations

__version__ = "0.1.0"
