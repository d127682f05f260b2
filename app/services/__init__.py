"""Business rules, as plain typed functions over plain values."""
