using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>2x2 max-pool with stride 2: [b, c, h, w] to [b, c, h/2, w/2] (floor).</summary>
    public static Tensor MaxPool2x2(Tape tape, Tensor x)
    {
        if (x.Shape.Length != 4 || x.Dim(2) < 2 || x.Dim(3) < 2)
        {
            throw new ArgumentException($"max-pool 2x2 expects [batch, channels, h>=2, w>=2], got {x}");
        }
        var k = tape.Kernels;
        int b = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var y = tape.NewTensor([b, c, h / 2, w / 2], x.RequiresGrad);
        var argmax = tape.Workspace.Ints.Allocate(y.Length);
        using (tape.Measure(OpKinds.Pool, Pass.Forward))
        {
            k.Pool.MaxPool2x2Forward(x.Data, y.Data, argmax, b, c, h, w);
        }
        if (x.RequiresGrad)
        {
            string scope = tape.Scope;
            tape.Record(y, () =>
            {
                if (y.HasGrad)
                {
                    using var backward = tape.Measure(OpKinds.Pool, Pass.Backward, scope);
                    k.Pool.MaxPool2x2Backward(y.Grad, argmax, tape.GradOf(x));
                }
            }).Keeps(argmax);
        }
        else
        {
            tape.Discard(argmax);
        }
        return y;
    }

    /// <summary>Global average pool: [b, c, h, w] to [b, c].</summary>
    public static Tensor GlobalAvgPool(Tape tape, Tensor x)
    {
        if (x.Shape.Length != 4)
        {
            throw new ArgumentException($"global average pool expects [batch, channels, h, w], got {x}");
        }
        var k = tape.Kernels;
        int b = x.Dim(0), c = x.Dim(1), spatial = x.Dim(2) * x.Dim(3);
        var y = tape.NewTensor([b, c], x.RequiresGrad);
        using (tape.Measure(OpKinds.Pool, Pass.Forward))
        {
            k.Pool.GlobalAvgPoolForward(x.Data, y.Data, b, c, spatial);
        }
        if (x.RequiresGrad)
        {
            string scope = tape.Scope;
            tape.Record(y, () =>
            {
                if (y.HasGrad)
                {
                    using var backward = tape.Measure(OpKinds.Pool, Pass.Backward, scope);
                    k.Pool.GlobalAvgPoolBackward(y.Grad, tape.GradOf(x), b, c, spatial);
                }
            });
        }
        return y;
    }
}
