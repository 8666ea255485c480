"""The planted-PHI proof: a corpus from PS3.15 Table E.1-1 and a checker that reads its own
transcription of the table, never the de-identifier's rules."""
