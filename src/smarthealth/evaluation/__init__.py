"""`smarthealth eval`: a Spanish gold set computed from the database, run through the pipeline
and scored (recall@8, fact recall, citation precision, abstention, leakage, latency)."""
