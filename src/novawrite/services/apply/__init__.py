"""Applying a finished generation's result to the novel: one module per concept.

Each ``apply_*(session, novel_id, params, result)`` runs inside the transaction
that marks the task completed (``Supervisor``), so a result is written exactly
once or not at all. They add and update, and never destroy what the author
wrote: the outline keeps every chapter's text, a chapter's replaced text becomes
a revision, and the lists never repeat a name the novel already has.

The generators that produce these results import no SQLAlchemy; the registry that
pairs each generator with its apply is ``novawrite.services.kinds``.
"""
