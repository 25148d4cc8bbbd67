"""Password sign-in (Flask-Login), sign-out, and the page for people without a workspace."""
from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from auth.forms import LoginForm, LogoutForm
from core.security import public, safe_next, signed_in
from services import accounts, sign_in_limits

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(form.next.data or url_for("workspace.dashboard"))
    if form.validate_on_submit():
        address = request.remote_addr
        locked = sign_in_limits.lockout(form.email.data, address)
        if locked is not None:
            flash(f"Too many failed sign-ins. Try again in {locked.minutes} "
                  f"minute{'s' if locked.minutes != 1 else ''}.", "error")
            response = make_response(render_template("auth/login.html", form=form), 429)
            response.headers["Retry-After"] = str(locked.retry_after)
            return response
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            sign_in_limits.record_success(form.email.data)
            target = safe_next(form.next.data)
            # A new session on sign-in: nothing set before it (e.g. by someone else) survives.
            session.clear()
            login_user(user)
            return redirect(target or url_for("workspace.dashboard"))
        sign_in_limits.record_failure(form.email.data, address)
        flash("That email and password do not match an account.", "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@signed_in
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/no-workspace")
@signed_in
def no_workspace():
    return render_template("auth/no_workspace.html")
