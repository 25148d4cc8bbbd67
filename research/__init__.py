"""Studies, activities, communities and the "Add participants" flow."""
