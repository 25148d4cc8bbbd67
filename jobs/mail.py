"""Mail jobs (queue "mail")."""
from core.mail import deliver


def deliver_message(message_id: int) -> str:
    """Send one recorded outbox message; MailError makes RQ retry it when the job has retries."""
    return deliver(message_id).status
