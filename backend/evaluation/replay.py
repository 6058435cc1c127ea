"""The former name of backend/evaluation/rehearsal.py, kept only while ui/app.py (another engineer's file for now)
imports `prepare_everyday` from here; delete it once that import reads
`from backend.evaluation.rehearsal import prepare_rehearsal` (issue 29)."""
from backend.evaluation.rehearsal import prepare_rehearsal as prepare_everyday

__all__ = ["prepare_everyday"]
