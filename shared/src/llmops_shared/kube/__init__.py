"""What the serving and workflow workers share to drive Kubernetes objects (or their files).

Both render objects, put them somewhere (a cluster, or YAML files), and watch what becomes of
them; they differ only in their kinds, their renders and how they read a status. Here is the
rest, configured by each worker:

* :mod:`.labels`: the labels and annotations every llm-ops object carries;
* :mod:`.objects`: objects as plain dicts (the applied part of a live object, the
  :class:`~.objects.Live` objects a watcher reports, the :class:`~.objects.View` that makes
  them);
* :mod:`.api` and :mod:`.resources`: the Kubernetes API (calls in a thread with the runtime's
  errors; the objects of one kind: server-side apply under the worker's field manager, reads,
  lists by label and deletes where "absent" is an answer);
* :mod:`.custom`: the calls on a custom resource (InferenceServices, Workflows), of the verbs a
  worker declares;
* :mod:`.files`: the manifests backend's files (the local default and GitOps);
* :mod:`.watcher`: the polling watcher's loop and memory (also the handlers' cache);
* :mod:`.settings` and :mod:`.worker`: the settings both read and the wiring both run.

Only :mod:`.api`, :mod:`.resources` and :mod:`.custom` import ``kubernetes`` (the ``kube``
extra): a worker on the manifests backend never loads them.
"""
