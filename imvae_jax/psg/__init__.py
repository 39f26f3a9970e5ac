"""The pseudo-sequence generator (paper section 3.1): LightGCN on the joint graph, top-T' recall.

``graph`` (sorted COO, D^-1/2 A D^-1/2), ``lightgcn`` (propagation, BPR, training loop),
``recall`` (chunked masked top-k, random recall, Recall/NDCG@k), ``checkpoint`` (Orbax adapter),
``pipeline`` (prepared dataset -> ``pseudo_x``/``pseudo_y``; :func:`pipeline.add_pseudo`),
``io`` / ``authors`` (the authors' LightGCN files and pseudo-lists), ``cli`` (``imvae psg``).
"""
