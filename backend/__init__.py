"""Tuneloop's headless core: data, training, generation and export. Never imports Gradio."""
