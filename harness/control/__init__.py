"""harness.control: acting on a running stack through its owner, and the owner's fault log."""
