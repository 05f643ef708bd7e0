"""One section object per report: its numbers, computed once, and a method per part of the page."""
