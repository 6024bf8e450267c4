using ILGPU;

namespace ZeroFL.Engine.Autograd;

/// <summary>
/// One op's recorded backward and what it holds until it has run: the tensors it reads
/// (<see cref="Reads"/>) and the workspace buffers the op keeps for it (<see cref="Keeps(ArrayView{float})"/>).
/// After the backward ran (or when the tape was not training, at once) the tape frees the buffers,
/// drops the holds and frees the output's gradient. Made by <see cref="Tape.Record"/>.
/// </summary>
public sealed class BackwardRecord
{
    private readonly Tape tape;
    private readonly Tensor? output;
    private readonly Action? backward;
    private List<Tensor>? reads;
    private List<Tensor>? compactable;
    private List<ArrayView<float>>? floats;
    private List<ArrayView<int>>? ints;

    internal BackwardRecord(Tape tape, Tensor? output, Action? backward)
    {
        this.tape = tape;
        this.output = output;
        this.backward = backward;
    }

    /// <summary>The backward reads the data of <paramref name="tensor"/>: it stays until the backward ran.</summary>
    public BackwardRecord Reads(Tensor tensor)
    {
        if (backward is not null)
        {
            var root = tensor.Root ?? tensor;
            tape.Hold(root);
            (reads ??= new()).Add(root);
        }
        return this;
    }

    /// <summary>
    /// The backward reads <paramref name="tensor"/> unless <paramref name="compact"/> has run: when
    /// the forward releases the tensor while this record is its only other holder, the tape runs
    /// <paramref name="compact"/> (which keeps what the backward needs in a smaller form; the backward
    /// then uses that) and frees the data at once. One such record per tensor.
    /// </summary>
    public BackwardRecord ReadsOrCompacts(Tensor tensor, Action compact)
    {
        if (backward is not null)
        {
            var root = tensor.Root ?? tensor;
            if (root.OwnedByTape)
            {
                if (root.Compact is not null)
                {
                    throw new InvalidOperationException($"{root} already has a compact form");
                }
                root.Compact = compact;
            }
            tape.Hold(root);
            (compactable ??= new()).Add(root);
        }
        return this;
    }

    /// <summary>The op kept <paramref name="view"/> (a workspace view) for its backward; freed after it.</summary>
    public BackwardRecord Keeps(ArrayView<float> view)
    {
        if (backward is null)
        {
            tape.Discard(view);
        }
        else
        {
            (floats ??= new()).Add(view);
        }
        return this;
    }

    /// <summary>The op kept <paramref name="view"/> (a workspace view) for its backward; freed after it.</summary>
    public BackwardRecord Keeps(ArrayView<int> view)
    {
        if (backward is null)
        {
            tape.Discard(view);
        }
        else
        {
            (ints ??= new()).Add(view);
        }
        return this;
    }

    /// <summary>Runs the backward, then frees what only it needed.</summary>
    internal void Run()
    {
        backward!();
        if (output is not null)
        {
            tape.FreeGradient(output);
        }
        foreach (var root in reads ?? [])
        {
            tape.Drop(root);
        }
        foreach (var root in compactable ?? [])
        {
            if (!root.Compacted)
            {
                root.Compact = null;
                tape.Drop(root);
            }
        }
        foreach (var view in floats ?? [])
        {
            tape.Discard(view);
        }
        foreach (var view in ints ?? [])
        {
            tape.Discard(view);
        }
    }
}
