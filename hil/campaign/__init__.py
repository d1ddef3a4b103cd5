"""Monte-Carlo campaigns: many seeded runs over a parameter grid on Dask, with statistics and a verdict
(docs/CAMPAIGNS.md). `hil campaign` is hil.campaign.command; the Python API is run_campaign."""

from __future__ import annotations

from hil.campaign.campaign import CampaignResult, run_campaign
from hil.campaign.spec import Campaign, campaign_from, load_campaign

__all__ = ["Campaign", "CampaignResult", "campaign_from", "load_campaign", "run_campaign"]
