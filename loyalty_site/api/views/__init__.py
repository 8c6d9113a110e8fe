"""The channel API's views, one module per resource: validate, call one service, render.

Every write runs in one transaction with the webhook events it causes (they are sent after
commit) and, when the request carries an `Idempotency-Key`, with its stored answer.
"""
