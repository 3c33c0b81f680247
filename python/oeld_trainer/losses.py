"""The round's losses, as src/trainer/opcd-loss.ts, off-policy-loss.ts and distillation-loss.ts define them. Rows are
response positions; p = softmax(logits / temperature) over the whole vocabulary for both models;
no renormalisation over the top-k set; the teacher's values are constants; token mean over rows."""
import torch


def top_k_mask(logits, k):
    if k >= logits.shape[-1]:
        return torch.ones_like(logits)
    idx = torch.topk(logits.detach(), k, dim=-1).indices
    return torch.zeros_like(logits).scatter_(-1, idx, 1.0)


def opcd_loss(student_logits, teacher_logits, temperature, top_k, reduce=True):
    """Reverse KL over the student's top-k: sum_{v in S_t} p_s(v) (log p_s(v) - log p_T(v)); the
    token mean, or (reduce False) the value per row."""
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0 if reduce else student_logits.sum(-1) * 0
    log_ps = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    with torch.no_grad():
        log_pt = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
        in_set = top_k_mask(student_logits.float(), top_k)
    per = (in_set * log_ps.exp() * (log_ps - log_pt)).sum(-1)
    return per.mean() if reduce else per


def forward_kl_loss(student_logits, teacher_logits, temperature, top_k, reduce=True):
    """The off-policy baseline: sum_{v in the teacher's top-k} p_T(v) (log p_T(v) - log p_s(v))."""
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0 if reduce else student_logits.sum(-1) * 0
    log_ps = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    with torch.no_grad():
        log_pt = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
        w = top_k_mask(teacher_logits.float(), top_k) * log_pt.exp()
        w_log_pt = w * log_pt
    per = (w_log_pt - w * log_ps).sum(-1)
    return per.mean() if reduce else per


def distillation_loss(method, student_logits, teacher_logits, temperature, top_k, reduce=True):
    """The loss of a distillation method (src/trainer/distillation-loss.ts): opcd the reverse KL,
    off-policy the forward KL, opcd-forward their sum on the student's own samples."""
    if method == "opcd":
        return opcd_loss(student_logits, teacher_logits, temperature, top_k, reduce)
    if method == "off-policy":
        return forward_kl_loss(student_logits, teacher_logits, temperature, top_k, reduce)
    if method == "opcd-forward":
        return (opcd_loss(student_logits, teacher_logits, temperature, top_k, reduce)
                + forward_kl_loss(student_logits, teacher_logits, temperature, top_k, reduce))
    raise ValueError(f"method: expected opcd, off-policy or opcd-forward, got {method!r}")
