"""Every table of the product. Import models from here."""
from models.accounts import (PERM_MANAGE_IMPORTS, PERM_MANAGE_INTEGRATIONS, ROLE_ADMIN, ROLE_RESEARCHER,
                             Membership, User, Workspace)
from models.audit import AuditEvent
from models.integrations import DescribeCache, SalesforceConnection
from models.outreach import Invitation, MessageTemplate, OutboxMessage, SuppressionEntry
from models.participants import Participant, ParticipantSource, SkippedSource
from models.plans import ImportPlan
from models.research import Activity, ActivityParticipant, Community, CommunityMember, Study, StudyParticipant
from models.runs import Incident, PreviewTotals, RunOutcome, RunSeenRecord, SyncRun

__all__ = [
    "User", "Workspace", "Membership", "ROLE_ADMIN", "ROLE_RESEARCHER", "PERM_MANAGE_IMPORTS",
    "PERM_MANAGE_INTEGRATIONS", "AuditEvent", "SalesforceConnection", "DescribeCache", "Invitation",
    "MessageTemplate", "OutboxMessage", "SuppressionEntry", "Participant", "ParticipantSource",
    "SkippedSource",
    "ImportPlan", "Study", "Activity", "StudyParticipant", "ActivityParticipant", "Community",
    "CommunityMember", "SyncRun", "RunOutcome", "RunSeenRecord", "PreviewTotals", "Incident",
]
