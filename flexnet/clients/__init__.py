"""Who may ask flexnet: NAS clients, HTTP API clients, the on/off rule they share, and the
RADIUS access profiles."""
