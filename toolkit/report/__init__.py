"""Leaderboard reports: tables, figures and qualitative strips from the results store (`toolkit leaderboard`).

Modules: tables (the measured tables), paper (published numbers, kept apart), figures
(matplotlib), strips (side-by-side videos), board (what a report shows), markdown and html
(the two documents, rendered from a board), and leaderboard (builds the board and writes both).
"""
