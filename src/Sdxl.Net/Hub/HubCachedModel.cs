namespace Sdxl.Net.Hub;

/// <summary>One model repository in the Hugging Face cache, as <see cref="SdxlModelHub.ListCache"/> finds it.</summary>
/// <param name="RepoId">The repository id, <c>org/name</c>.</param>
/// <param name="Directory">The repository's cache folder (<c>models--org--name</c>).</param>
/// <param name="SizeBytes">Bytes on disk: the blobs, or the snapshot files where the cache holds copies instead of links.</param>
/// <param name="Snapshots">The downloaded commits, newest first.</param>
public sealed record HubCachedModel(string RepoId, string Directory, long SizeBytes, IReadOnlyList<HubCachedSnapshot> Snapshots);

/// <summary>One commit of a cached repository.</summary>
/// <param name="Commit">The commit hash (the snapshot folder's name).</param>
/// <param name="Refs">The branches and tags (<c>refs/</c>) that point at this commit.</param>
/// <param name="Directory">The snapshot folder.</param>
/// <param name="OnnxLayouts">The ONNX pipeline folders in it, relative to the snapshot ("" for the snapshot itself); each can be given to <c>WithModel</c>.</param>
public sealed record HubCachedSnapshot(string Commit, IReadOnlyList<string> Refs, string Directory, IReadOnlyList<string> OnnxLayouts);
