"""The association's IT staff: their accounts and their sign-in."""
