"""restock package."""
