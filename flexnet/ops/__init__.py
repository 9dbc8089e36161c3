"""Operations: migrations, the instance folder, backup and restore with its carry-over, the
demo instance, master key rotation."""
