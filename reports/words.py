"""The report's words in Chinese (the default: shop owners read it) and English (``--lang en``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from orderguard.errors import InvalidInputError

_ZH = {
    "title": "风控月报", "campaign_title": "大促风控报告", "period": "统计期间", "generated": "生成时间",
    "days": "天", "summary": "概览", "orders": "订单数", "flagged": "需人工审核（审核+拦截）",
    "frauds": "确认欺诈", "honest": "误报（已放行）", "unlabelled": "未标注", "model": "模型版本",
    "rules_only": "仅规则（尚无模型）", "per_day_channel": "每日订单与标记（按渠道）", "day": "日期",
    "channel": "渠道", "by_channel": "各渠道汇总", "bands": "各决策档位", "band": "档位",
    "approve": "通过", "verify": "验证", "review": "审核", "hold": "拦截",
    "band_orders": "本档订单", "per_day": "每日", "at_or_above": "本档及以上", "precision": "精确率",
    "recall": "召回率", "fpr": "误报率", "money_caught": "拦下的欺诈金额",
    "rules": "规则效果", "rule": "规则", "pattern": "风险类型", "hits": "命中", "points": "分值（设定）",
    "weight": "模型学到的权重", "effective": "实际分值", "lost_weight": "权重下调的规则",
    "gained_weight": "按设定分值生效的规则", "no_model_weights": "尚无模型：规则按设定分值生效。",
    "losses": "避免的损失", "held_money": "被拦截的确认欺诈订单金额",
    "stopped_money": "发货前被拦下（审核或拦截）的确认欺诈订单金额", "missed_money": "未拦下的确认欺诈订单金额",
    "models": "模型历次评估（留出集）", "version": "版本", "champion": "当前在用", "data_window": "训练数据",
    "pr_auc": "PR AUC", "no_models": "尚未训练模型。", "patterns": "主要风险类型", "money": "金额",
    "notes": "说明", "note_labels": "精确率只计已标注订单（确认欺诈 / 误报）；误报率把未标注订单算作正常订单；"
                                   "以每个订单最新的审核结论为准。",
    "note_source": "决策、精确率与金额均来自对本期订单按现行策略（规则、模型、档位、大促调整）的回放，"
                   "与线上记录一致：", "chart_orders": "每日订单与标记", "chart_models": "模型 PR AUC 随版本变化",
    "chart_flags": "标记", "none": "无",
}
_EN = {
    "title": "Risk report", "campaign_title": "Campaign risk report", "period": "Period", "generated": "Generated",
    "days": "days", "summary": "Summary", "orders": "Orders", "flagged": "Flagged for a reviewer (review + hold)",
    "frauds": "Confirmed fraud", "honest": "False positives (released)", "unlabelled": "Unlabelled",
    "model": "Model version", "rules_only": "rules only (no model yet)", "per_day_channel": "Orders and flags per day "
    "(by channel)", "day": "Day", "channel": "Channel", "by_channel": "By channel", "bands": "Decision bands",
    "band": "Band", "approve": "approve", "verify": "verify", "review": "review", "hold": "hold",
    "band_orders": "Orders in band", "per_day": "Per day", "at_or_above": "At or above", "precision": "Precision",
    "recall": "Recall", "fpr": "False-positive rate", "money_caught": "Fraud money caught",
    "rules": "Rules", "rule": "Rule", "pattern": "Pattern", "hits": "Hits", "points": "Points (as written)",
    "weight": "Learned weight", "effective": "Effective points", "lost_weight": "Rules that lost weight",
    "gained_weight": "Rules at their written points", "no_model_weights": "No model yet: rules count as written.",
    "losses": "Losses avoided", "held_money": "Paid amount of confirmed-fraud orders held",
    "stopped_money": "Paid amount of confirmed-fraud orders stopped before shipping (review or hold)",
    "missed_money": "Paid amount of confirmed-fraud orders not stopped",
    "models": "Model holdout metrics over time", "version": "Version", "champion": "champion",
    "data_window": "Training data", "pr_auc": "PR AUC", "no_models": "No model trained yet.",
    "patterns": "Top patterns", "money": "Amount", "notes": "Notes",
    "note_labels": "Precision counts labelled orders only (confirmed fraud / false positive); the false-positive "
                   "rate counts unlabelled orders as honest; each order's newest verdict counts.",
    "note_source": "Decisions, precision and amounts come from replaying this period's orders through the live "
                   "policy (rules, model, bands, campaign shifts), checked against what serving recorded:",
    "chart_orders": "Orders and flags per day", "chart_models": "Model PR AUC by version", "chart_flags": "flagged",
    "none": "none",
}
LANGS: Mapping[str, Mapping[str, str]] = MappingProxyType({"zh": MappingProxyType(_ZH), "en": MappingProxyType(_EN)})


def words(lang: str) -> Mapping[str, str]:
    """The labels of ``lang`` (``zh`` or ``en``)."""
    found = LANGS.get(lang)
    if found is None:
        raise InvalidInputError.must("lang", "zh or en", lang)
    return found
