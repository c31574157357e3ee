import pickle, struct, collections, numpy as np, sys
DT={'FloatStorage':np.float32,'LongStorage':np.int64,'IntStorage':np.int32,'HalfStorage':np.float16,'DoubleStorage':np.float64,'ByteStorage':np.uint8}
class Storage:
    def __init__(s,dtype,key,numel): s.dtype,s.key,s.numel=dtype,key,numel; s.data=None
def load(path):
    f=open(path,'rb')
    storages={}
    class U(pickle.Unpickler):
        def find_class(s,mod,name):
            if mod=='torch._utils' and name=='_rebuild_tensor_v2':
                return lambda st,off,size,stride,*a: ('T',st,off,tuple(size),tuple(stride))
            if mod=='torch' and name.endswith('Storage'):
                return name
            if mod=='collections' and name=='OrderedDict': return collections.OrderedDict
            raise pickle.UnpicklingError(f'{mod}.{name}')
        def persistent_load(s,pid):
            typ,stype,key,loc,numel,view=pid
            if key not in storages: storages[key]=Storage(DT[stype],key,numel)
            return storages[key]
    magic=pickle.load(f); proto=pickle.load(f); info=pickle.load(f)
    obj=U(f).load()
    keys=pickle.load(f)
    for k in keys:
        st=storages[k]; n=struct.unpack('<q',f.read(8))[0]
        st.data=np.frombuffer(f.read(n*np.dtype(st.dtype).itemsize),dtype=st.dtype)
    out=collections.OrderedDict()
    for k,v in obj.items():
        _,st,off,size,stride=v
        a=np.lib.stride_tricks.as_strided(st.data[off:],shape=size,strides=[x*st.data.itemsize for x in stride]) if size else st.data[off:off+1].reshape(())
        out[k.replace('module.','',1)]=np.array(a)
    return out
if __name__=='__main__':
    sd=load(sys.argv[1])
    for k,v in sd.items(): print(k,v.shape,v.dtype)
