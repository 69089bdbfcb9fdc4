"""Leaderboard reports: tables, figures and qualitative strips from the results store (`toolkit leaderboard`).

Modules: tables (the measured tables), paper (published numbers, kept apart), figures
(matplotlib), strips (side-by-side videos), markdown and html (the two documents), and
leaderboard (builds everything and writes it).
"""
