"""Operations: connection status, plans, runs with live logs, the lookup and incidents."""
